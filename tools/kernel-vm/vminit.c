/* PID 1 of the uringbpf kernel test guest.
 *
 * Why a custom init: every guest run is one command, and booting a full
 * init system under TCG would cost far more than the command itself.
 * This program mounts what a test needs, runs `/bin/sh /run/vm/cmd`
 * (the host writes that file into the "run" virtiofs share), sends the
 * command's stdout+stderr to the first virtio console (/dev/hvc0, a file
 * on the host), prints "VMEXIT=<status>" on the kernel console and powers
 * the machine off.
 *
 * The checkout share is mounted at the path given by "vm.work=" on the
 * kernel command line, so absolute paths agree between host and guest.
 * Built with `gcc -static` by tools/kernel-vm/setup.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, const char *a, int n)
{
	int fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd < 0)
		return;
	dprintf(fd, fmt, a, n);
	close(fd);
}

static void must_mount(const char *src, const char *dst, const char *type,
		       unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) != 0)
		say("vminit: mount %s failed: errno %d\n", dst, errno);
}

/* Value of "key=" on the kernel command line, or NULL. */
static char *cmdline_value(const char *key)
{
	static char buf[4096];
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n;
	size_t klen = strlen(key);
	char *tok, *save;

	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = 0;
	for (tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save))
		if (strncmp(tok, key, klen) == 0 && tok[klen] == '=')
			return tok + klen + 1;
	return NULL;
}

int main(void)
{
	char *work;
	int out, status = 255;
	pid_t pid;

	must_mount("proc", "/proc", "proc", 0, NULL);
	must_mount("sysfs", "/sys", "sysfs", 0, NULL);
	must_mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	must_mount("tmpfs", "/tmp", "tmpfs", 0, "mode=1777");
	must_mount("tmpfs", "/run", "tmpfs", 0, "mode=755");
	must_mount("tmpfs", "/root", "tmpfs", 0, "mode=700");
	must_mount("tmpfs", "/var/tmp", "tmpfs", 0, "mode=1777");
	must_mount("tmpfs", "/dev/shm", "tmpfs", 0, "mode=1777");
	must_mount("bpffs", "/sys/fs/bpf", "bpf", 0, NULL);
	must_mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	must_mount("run", "/run/vm", "virtiofs", 0, NULL);
	work = cmdline_value("vm.work");
	if (work) {
		char path[4096];
		size_t i;
		/* The root is read-only: the host-side run script creates
		 * this path in the guest tree before boot; mkdir here only
		 * helps when the root is writable. */
		snprintf(path, sizeof(path), "%s", work);
		for (i = 1; path[i]; i++)
			if (path[i] == '/') {
				path[i] = 0;
				mkdir(path, 0755);
				path[i] = '/';
			}
		must_mount("work", work, "virtiofs", 0, NULL);
	}

	/* loopback up: tests talk to 127.0.0.1 (there is no other interface) */
	{
		int s = socket(AF_INET, SOCK_DGRAM, 0);
		struct ifreq ifr;

		memset(&ifr, 0, sizeof(ifr));
		strcpy(ifr.ifr_name, "lo");
		if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0)
			say("vminit: no %s interface (errno %d)\n", "lo", errno);
		ifr.ifr_flags |= IFF_UP;
		if (s >= 0 && ioctl(s, SIOCSIFFLAGS, &ifr) != 0)
			say("vminit: cannot bring %s up (errno %d)\n", "lo", errno);
		if (s >= 0)
			close(s);
	}

	out = open("/dev/hvc0", O_WRONLY | O_NOCTTY);
	pid = fork();
	if (pid == 0) {
		int in = open("/dev/null", O_RDONLY);
		dup2(in, 0);
		if (out >= 0) {
			dup2(out, 1);
			dup2(out, 2);
		}
		setsid();
		if (work && chdir(work) != 0)
			chdir("/");
		setenv("PATH", "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
		setenv("HOME", "/root", 1);
		setenv("LANG", "C.UTF-8", 1);
		setenv("URINGBPF_GUEST", "1", 1);
		execl("/bin/sh", "sh", "/run/vm/cmd", (char *)NULL);
		_exit(127);
	}
	for (;;) {
		int st;
		pid_t w = wait(&st);
		if (w < 0 && errno != EINTR)
			break;
		/* Orphans re-parented to us are reaped here; we stop at the
		 * command itself so a stray daemon cannot keep the guest up. */
		if (w == pid) {
			status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			break;
		}
	}
	if (out >= 0) {
		fsync(out);
		close(out);
	}
	sync();
	say("VMEXIT=%s%d\n", "", status);
	reboot(RB_POWER_OFF);
	return 0;
}

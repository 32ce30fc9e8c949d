#!/bin/sh
# In the tools/kernel-vm guest (Linux 7.2): load each global-function object with libbpf
# (bpftool prog loadall: BTF func_info, so global functions are verified as such) and
# print JSON verdicts (recorded in ../kernel72_global_funcs.json). Objects: compile
# tests/bpf/verifier/gfuncs/*.bpf.c with `uringbpf cc` into build/h2-gfuncs/ on the host first.
#   tools/kernel-vm/run -- sh tests/bpf/verifier/gfuncs/run_in_guest.sh
for o in /work/main/build/h2-gfuncs/*.o; do
  n=$(basename $o .o)
  if out=$(bpftool prog loadall $o /sys/fs/bpf/h2_$n 2>&1); then
    echo "{\"name\": \"$n\", \"ok\": true, \"last\": \"\"}"
    rm -rf /sys/fs/bpf/h2_$n
  else
    last=$(echo "$out" | grep -v '^processed\|^libbpf\|^Error\|^Warning\|^If it used\|^-- END\|^$' | tail -1 | tr -d '"\\')
    echo "{\"name\": \"$n\", \"ok\": false, \"last\": \"$last\"}"
  fi
done

#!/bin/sh
# In the tools/kernel-vm guest (Linux 7.2): load loops.bpf.c's object with libbpf (bpftool,
# debug on: the verifier's log of each program, BTF func_info for the bpf_loop callback)
# and print each program's "processed N insns" line.  Compile on the host first:
#   uringbpf cc -o build/m-may-goto/loops.o tests/bpf/verifier/may_goto_c/loops.bpf.c
#   tools/kernel-vm/run -- sh tests/bpf/verifier/may_goto_c/run_in_guest.sh
# Recorded in ../may_goto_c_kernel72.json (test_may_goto_verifier.py).
o=/work/main/build/m-may-goto/loops.o
bpftool -d prog loadall $o /sys/fs/bpf/m_may_goto 2>&1 |
  grep -E "BEGIN PROG LOAD LOG|^processed [0-9]+ insns|failed to load|^Error"
echo "exit=$?"
rm -rf /sys/fs/bpf/m_may_goto

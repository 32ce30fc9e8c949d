"""eBPF: ISA, assembler, disassembler, ELF/BTF loader, maps, helpers, verifier, interpreter, JIT."""

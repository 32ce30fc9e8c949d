"""One module per io_uring+BPF design: loop (7.1), filter (7.0), requests (2021 RFC), ops (IORING_OP_BPF), kbuf."""

"""The io_uring layer: UAPI, the kernel ring over syscalls+mmap, and the thread-pool fallback."""

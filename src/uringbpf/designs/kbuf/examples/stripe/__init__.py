"""A striped (RAID-0) block target served through uringbpf's kernel-buffer design.

``layout``    the RAID-0 mapping (kublk's stripe target: <= 4 files, chunk 4 KiB..512 KiB)
``target``    the ublk-style server: fetches requests from a RequestSource, splits them per
              file, runs them on a KbufRing in copy, zero-copy or auto-zero-copy mode
``integrity`` the crc32c integrity log of every write (a BPF program, or native fallback)
``nbd``       NBD server (newstyle fixed handshake) in front of the source, and a client
``server``    ``python -m stripe.server``: all of it wired together on 127.0.0.1
"""

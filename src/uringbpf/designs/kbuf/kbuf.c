/* Native pieces of the kbuf design (src/uringbpf/designs/kbuf.py).
 *
 * Two things must not run per byte in Python: the copy that "copy mode" does between a
 * request's pages and the server's buffer (the role ublk's driver plays with
 * copy_page_to_iter), and the crc32c that the stripe example's integrity log computes over
 * every write when no BPF engine is available. Both work on raw addresses, so the pages are
 * never turned into Python objects.
 */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Copy n bytes between two native addresses; returns n (the byte count, like a read/write). */
uint64_t kbuf_copy(uint64_t dst, uint64_t src, uint64_t n)
{
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)n);
    return n;
}

/* crc32c (Castagnoli, reflected polynomial 0x82F63B78), table-driven, 8 bytes per step
 * ("slicing by 8"). Tables are built on first use. */
static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
    crc_ready = 1;
}

/* Continue a crc32c: pass 0 to start; the result is already finalised (xor-out applied). */
uint32_t kbuf_crc32c(uint32_t crc, uint64_t addr, uint64_t n)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)addr;
    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^
              crc_tab[5][(v >> 16) & 0xff] ^ crc_tab[4][(v >> 24) & 0xff] ^
              crc_tab[3][(v >> 32) & 0xff] ^ crc_tab[2][(v >> 40) & 0xff] ^
              crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][(v >> 56) & 0xff];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

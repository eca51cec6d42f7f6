/* SHA-256 (FIPS 180-4), for the object cache's keys and entry checksums: a collision
 * would load the wrong code, so the hash is a cryptographic one. */
#ifndef ED_SHA256_H
#define ED_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[8];
    uint64_t bytes; /* fed so far */
    uint8_t block[64];
} ed_sha256;

void ed_sha256_init(ed_sha256 *s);
void ed_sha256_add(ed_sha256 *s, const void *data, size_t n);
void ed_sha256_done(ed_sha256 *s, uint8_t digest[32]);
/* The digest of data as 64 lower-case hex digits and a NUL. */
void ed_sha256_hex(const void *data, size_t n, char hex[65]);

#endif

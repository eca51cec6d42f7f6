/* Test program of test_export, linked with an exported policy: K calls on rows of OBS
 * (raw f32), the chunks written to OUT (raw f32). Each call runs in the object's static
 * workspace (policy_run) and in one of ours (policy_call); they must agree.
 * usage: calls SEED K OBS.raw OUT.raw */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 5) return 2;
    uint64_t seed = strtoull(argv[1], NULL, 10);
    int k = atoi(argv[2]);
    float *obs = malloc(sizeof(float) * POLICY_OBS_COUNT * (size_t)k);
    float a[POLICY_SAMPLES_COUNT], b[POLICY_SAMPLES_COUNT];
    void *ws = aligned_alloc(64, (POLICY_WORKSPACE_BYTES + 63) / 64 * 64);
    FILE *in = fopen(argv[3], "rb"), *out = fopen(argv[4], "wb");
    if (!obs || !ws || !in || !out || fread(obs, sizeof(float) * POLICY_OBS_COUNT, (size_t)k, in) != (size_t)k)
        return 3;
    policy_init(ws);
    for (int i = 0; i < k; i++) {
        if (policy_run(obs + i * POLICY_OBS_COUNT, a, seed, (uint64_t)i) != 0) return 4;
        if (policy_call(ws, obs + i * POLICY_OBS_COUNT, b, seed, (uint64_t)i) != 0) return 4;
        if (memcmp(a, b, sizeof a) != 0) return 5;
        fwrite(a, sizeof a, 1, out);
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : 3;
}

/* An exported policy in plain C: observation in, action chunk out. Build next to the
 * files `edifice export ddpm --ckpt F --out policy` wrote:
 *   cc policy_demo.c policy.o -lopenblas -lm -o policy_demo
 *   ./policy_demo SEED OBS...   (numbers as strtof reads them; %a prints them exactly) */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    float obs[POLICY_OBS_COUNT], chunk[POLICY_SAMPLES_COUNT];
    if (argc != 2 + POLICY_OBS_COUNT) {
        fprintf(stderr, "usage: %s SEED OBS (%d numbers)\n", argv[0], POLICY_OBS_COUNT);
        return 2;
    }
    for (int i = 0; i < POLICY_OBS_COUNT; i++) obs[i] = strtof(argv[2 + i], NULL);
    policy_sample(obs, strtoull(argv[1], NULL, 10), chunk);
    for (int i = 0; i < POLICY_SAMPLES_COUNT; i++) printf("%a%c", chunk[i], i % 2 ? '\n' : ' ');
    return 0;
}

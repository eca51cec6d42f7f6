/* A small untrained checkpoint for tests that sample: the model def trained for no steps
 * on data, saved to path and read back, every f32 param then moved off its initial value
 * (the output layers start at zero) so the network's output matters. */
#ifndef TEST_SMALL_CHECKPOINT_H
#define TEST_SMALL_CHECKPOINT_H

#include "models/trainer.h"

/* opts: the model's options (e.g. hidden and layers); fails the test on an error. */
void small_checkpoint(const char *def, const char *data, const ed_option_arg *opts, int nopts, const char *path,
                      ed_checkpoint *ck);

#endif

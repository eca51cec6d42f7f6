/* Test helpers for suites that drive the edifice command line. */
#ifndef TEST_CLI_RUN_H
#define TEST_CLI_RUN_H

typedef struct {
    int status; /* the exit status, -1 if the CLI did not exit normally */
    char out[262144];
    char err[65536];
} cli_result;

/* Run the CLI at path `cli` with args (a shell fragment), capturing stdout and stderr
 * (truncated to the buffers) through files in directory dir. */
void cli_run(const char *cli, const char *dir, cli_result *r, const char *args);

/* Write text to dir/name; fails the test if the file cannot be opened. */
void write_file_in(const char *dir, const char *name, const char *text);

#endif

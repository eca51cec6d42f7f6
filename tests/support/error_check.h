/* Test helper: the last error says what it should. */
#ifndef TEST_ERROR_CHECK_H
#define TEST_ERROR_CHECK_H

/* Fail the test unless ed_last_error() contains part. */
void check_error_has_at(const char *part, const char *file, int line);
#define CHECK_ERROR_HAS(part) check_error_has_at((part), __FILE__, __LINE__)

#endif

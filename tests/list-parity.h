/* Tests of the Python-parity calls of pipes, waiting, queues and
 * synchronisation: TEST_ENTRY lines, see tests/list.h. */
TEST_ENTRY(C18_wait_accepts_raw_handles, EACH, 30)

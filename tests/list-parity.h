/* Tests of the Python-parity calls of pipes, waiting, queues and
 * synchronisation: TEST_ENTRY lines, see tests/list.h. */
TEST_ENTRY(C15_readable_writable_closed, ONCE, 30)
TEST_ENTRY(C16_handles_to_running_process, EACH, 60)
TEST_ENTRY(C16_missing_handles_are_an_error, ONCE, 30)
TEST_ENTRY(C16_handles_to_another_user_refused, ONCE, 30)
TEST_ENTRY(C17_adopt_descriptor, EACH, 30)
TEST_ENTRY(C17_adopt_record_channel, ONCE, 30)
TEST_ENTRY(C18_wait_accepts_raw_handles, EACH, 30)
TEST_ENTRY(Q20_queue_shutdown, EACH, 60)
TEST_ENTRY(L17_locked_and_owner, EACH, 60)
TEST_ENTRY(L18_cond_wait_for, EACH, 60)
TEST_ENTRY(L19_barrier_action, EACH, 60)
TEST_ENTRY(L20_barrier_default_timeout, EACH, 60)

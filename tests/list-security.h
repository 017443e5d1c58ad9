/* Tests of the spawn bootstrap's trust boundary (rows S01-S04): TEST_ENTRY
 * lines, see tests/list.h. They start their children by spawn whatever the
 * run's start method, so each runs once. */
TEST_ENTRY(S01_secure_exec_program_refused, ONCE, 30)
TEST_ENTRY(S02_frame_on_stdin_refused, ONCE, 30)
TEST_ENTRY(S02_grandparent_channel_refused, ONCE, 30)
TEST_ENTRY(S02_other_process_channel_refused, ONCE, 30)
TEST_ENTRY(S02_parent_channel_accepted, ONCE, 30)
TEST_ENTRY(S03_no_load_of_unmapped_module, ONCE, 30)
TEST_ENTRY(S03_target_not_function_entry, ONCE, 30)
TEST_ENTRY(S03_malformed_frame_refused, ONCE, 30)
TEST_ENTRY(S03_boot_parse_rejects_malformed, ONCE, 30)
TEST_ENTRY(S04_other_user_cannot_open_objects, ONCE, 60)
TEST_ENTRY(_S02_middle, ONCE, 30)
TEST_ENTRY(_S02_maker, ONCE, 30)

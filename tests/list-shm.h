/* Tests of named shared memory: TEST_ENTRY lines, see tests/list.h. */
TEST_ENTRY(N01_create_exclusive_attach_real_size, ONCE, 30)
TEST_ENTRY(N02_missing_or_unlinked_is_enoent, ONCE, 30)
TEST_ENTRY(N03_attacher_that_ends_keeps_block, EACH, 30)
TEST_ENTRY(N04_other_user_cannot_attach, ONCE, 30)
TEST_ENTRY(N04_generated_names_unique_and_unpredictable, EACH, 30)
TEST_ENTRY(N05_child_attaches_by_name, EACH, 30)
TEST_ENTRY(N06_new_block_zero_filled, ONCE, 30)

/* Tests of the sync area: TEST_ENTRY lines, see tests/list.h. */

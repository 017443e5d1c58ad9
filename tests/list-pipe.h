/* Tests of the pipe area: TEST_ENTRY lines, see tests/list.h. */

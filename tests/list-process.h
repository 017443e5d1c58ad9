/* Tests of the process area: TEST_ENTRY lines, see tests/list.h. */

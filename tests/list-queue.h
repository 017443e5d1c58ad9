/* Tests of the queue area: TEST_ENTRY lines, see tests/list.h. */

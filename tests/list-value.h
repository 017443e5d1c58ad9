/* Tests of the value area: TEST_ENTRY lines, see tests/list.h. */

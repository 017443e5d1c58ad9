/* Tests of the pipe area (rows of CONFORMANCE.md). */
#include "harness.h"

typedef int th_pipe_placeholder;

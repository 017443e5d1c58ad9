/* Tests of the process area (rows of CONFORMANCE.md). */
#include "harness.h"

typedef int th_process_placeholder;

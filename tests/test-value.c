/* Tests of the value area (rows of CONFORMANCE.md). */
#include "harness.h"

typedef int th_value_placeholder;

/* Tests of the queue area (rows of CONFORMANCE.md). */
#include "harness.h"

typedef int th_queue_placeholder;

/* Tests of the sync area (rows of CONFORMANCE.md). */
#include "harness.h"

typedef int th_sync_placeholder;

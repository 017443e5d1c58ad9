/*
 * The one list of tests. Each area keeps its entries in its own file:
 *
 *   TEST_ENTRY(ID_name, MODE, TIMEOUT_S)
 *
 * MODE is ONCE (no process is started, or the start method does not matter)
 * or EACH (run once per start method: fork and spawn on POSIX, spawn on
 * Windows). TIMEOUT_S is the test's own timeout in seconds, before the
 * multiplier. Names starting with '_' are hidden helpers of the meta-tests:
 * the runner knows them, CTest does not register them. tests/CMakeLists.txt
 * reads these files to register every test with CTest, one line each, so keep
 * an entry on one line.
 */
/* In the order the areas were built, which --list shows: not sorted. */
/* clang-format off */
#include "list-harness.h"
#include "list-value.h"
#include "list-process.h"
#include "list-pipe.h"
#include "list-queue.h"
#include "list-sync.h"
#include "list-backend.h"
#include "list-security.h"
#include "list-pool.h"
#include "list-shm.h"
#include "list-parity.h"
/* clang-format on */

/*
 * The one skip table. A row that cannot hold on a platform is listed here,
 * with the reason; the runner reports it as skipped there (CTest: skipped,
 * with the reason printed). Nothing else is skipped. docs/platforms.md
 * repeats the table for users.
 *
 *   TH_SKIP_ENTRY(test name, platform ("posix", "win32", "wine"), reason)
 *
 * "wine" rows hold on Windows and are skipped only when the runner detects
 * Wine.
 */
TH_SKIP_ENTRY("_meta_skip", "posix", "the harness's own skip check")
TH_SKIP_ENTRY("_meta_skip", "win32", "the harness's own skip check")
TH_SKIP_ENTRY("process_spawn_child_ends_early_is_echild", "win32",
              "the test's stand-in for a program that is not an mproc "
              "program is a POSIX shell script")
TH_SKIP_ENTRY("Q14_pid_reuse", "win32",
              "Windows cannot choose process ids, so a pid cannot be made "
              "to go to a new process; a dead owner's mutex handle is "
              "abandoned whatever the ids (Q07, Q12, Q18, Q19)")
TH_SKIP_ENTRY("Q14_pid_reuse_stress", "win32",
              "Windows cannot choose process ids (see Q14_pid_reuse)")
TH_SKIP_ENTRY("Q14_cancel_never_leaves_a_lock", "win32",
              "no thread cancellation can act inside the library on "
              "Windows (winpthreads acts only in its own functions)")

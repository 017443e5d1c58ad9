/*
 * The one skip table. A row that cannot hold on a platform is listed here,
 * with the reason; the runner reports it as skipped there (CTest: skipped,
 * with the reason printed). Nothing else is skipped. docs/platforms.md
 * repeats the table for users.
 *
 *   TH_SKIP_ENTRY(test name, platform ("posix", "win32", "wine",
 *                 "posix-nonroot"), reason)
 *
 * "wine" rows hold on Windows and are skipped only when the runner detects
 * Wine. "posix-nonroot" rows need root on POSIX (to make a set-id program
 * or to switch to another user) and are skipped only when the runner is
 * not root.
 */
TH_SKIP_ENTRY("_meta_skip", "posix", "the harness's own skip check")
TH_SKIP_ENTRY("_meta_skip", "win32", "the harness's own skip check")
TH_SKIP_ENTRY("process_spawn_child_ends_early_is_echild", "win32",
              "the test's stand-in for a program that is not an mproc "
              "program is a POSIX shell script")
TH_SKIP_ENTRY("P09_not_a_child_is_enotchild", "win32",
              "no fork: a process object never reaches another process, so "
              "none can be another process's child")
TH_SKIP_ENTRY("P27_daemon_spawn_starts_like_others", "win32",
              "no signal dispositions or masks to inherit, and a daemon child "
              "is started by the same CreateProcessW call with the same handle "
              "list as any other (P20 checks the handles)")
TH_SKIP_ENTRY("S01_secure_exec_program_refused", "win32",
              "Windows has no set-id programs; its nearest form, a child "
              "elevated above its parent, needs a UAC consent no test can "
              "give (the check is there: docs/security.md)")
TH_SKIP_ENTRY("S01_secure_exec_program_refused", "posix-nonroot",
              "making a setgid program of the runner needs root")
TH_SKIP_ENTRY("S04_other_user_cannot_open_objects", "posix-nonroot",
              "switching a probe to another user needs root")
TH_SKIP_ENTRY("Q14_pid_reuse", "win32",
              "Windows cannot choose process ids, so a pid cannot be made "
              "to go to a new process; the side lock compares the owner's "
              "creation time as POSIX compares its start time, on the same "
              "code, and a dead owner is taken over whatever the ids "
              "(Q07, Q12, Q18, Q19)")
TH_SKIP_ENTRY("Q14_process_lock_pid_reuse", "win32",
              "Windows cannot choose process ids (see Q14_pid_reuse); the "
              "stamp of the start time is compared as on POSIX")
TH_SKIP_ENTRY("Q14_pid_reuse_stress", "win32",
              "Windows cannot choose process ids (see Q14_pid_reuse)")
TH_SKIP_ENTRY("Q14_cancel_never_leaves_a_lock", "win32",
              "no thread cancellation can act inside the library on "
              "Windows (winpthreads acts only in its own functions)")
TH_SKIP_ENTRY("N04_other_user_cannot_attach", "posix-nonroot",
              "switching a probe to another user needs root")
TH_SKIP_ENTRY("C16_handles_to_another_user_refused", "posix-nonroot",
              "switching a probe to another user needs root")
TH_SKIP_ENTRY("C16_handles_to_another_user_refused", "win32",
              "no second user to run a probe as (Wine has one); the check "
              "compares the users of the pipe's two processes' tokens "
              "(docs/platforms.md)")

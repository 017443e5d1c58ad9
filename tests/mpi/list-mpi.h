/* The MPI suite (tests/mpi/CMakeLists.txt): MPI_ENTRY(name, launch,
 * timeout_s). launch: N4 (mpirun -n 4 --oversubscribe), N1 (mpirun -n
 * 1), ALONE (no mpirun), CRASH (mpirun -n 4, the job must end non-zero,
 * in time, with the output CMakeLists.txt expects). The T rows are
 * tests/test-pool.c's, run again over MPI (CTest name NAME.mpi): the
 * issue's T01-T05, T08, T13, and those of T10, T11, T14 that hold. */
MPI_ENTRY(T01_map_in_order, N4, 60)
MPI_ENTRY(T01_bad_arguments, N4, 30)
MPI_ENTRY(T02_imap_ordered_with_timeout, N4, 30)
MPI_ENTRY(T02_imap_unordered_each_once, N4, 30)
MPI_ENTRY(T03_starmap_unpacks, N4, 30)
MPI_ENTRY(T04_apply_and_futures, N4, 30)
MPI_ENTRY(T04_callback_calls_back_into_pool, N4, 30)
MPI_ENTRY(T05_task_error_reaches_caller, N4, 30)
MPI_ENTRY(T08_initializer_runs_once_per_worker, N4, 30)
MPI_ENTRY(T08_failing_initializer_reported, N4, 30)
MPI_ENTRY(T13_stats_and_progress_count_exactly, N4, 30)
MPI_ENTRY(T10_close_join_runs_everything, N4, 30)
MPI_ENTRY(T11_cancel_not_started_only, N4, 30)
MPI_ENTRY(T11_cancel_wakes_the_waiting_thread, N4, 30)
MPI_ENTRY(T14_threads_submit_and_collect, N4, 60)
MPI_ENTRY(M01_map_10000_items_in_order, N4, 60)
MPI_ENTRY(M02_worker_ranks_serve_until_master_ends, N4, 30)
MPI_ENTRY(M02_return_mode_returns_when_master_closes, N4, 30)
MPI_ENTRY(M03_imap_unordered_apply_async_futures, N4, 30)
MPI_ENTRY(M04_task_error_fails_only_its_task, N4, 30)
MPI_ENTRY(M06_crashed_rank_ends_job, CRASH, 60)
MPI_ENTRY(M06_exit_in_task_ends_job, CRASH, 60)
MPI_ENTRY(M06_killed_rank_ends_job, CRASH, 60)
MPI_ENTRY(M06_crashed_master_ends_job, CRASH, 60)
MPI_ENTRY(M07_outside_job_local_fallback, ALONE, 30)
MPI_ENTRY(M07_world_of_one_rank, N1, 30)
MPI_ENTRY(M08_worker_rank_calls_refused, N4, 30)

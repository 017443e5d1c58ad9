# Runs COMMAND (its words separated by |), which must fail (non-zero exit) within
# WITHIN_MS milliseconds with output matching EXPECT (M06: a crashed rank
# ends the job promptly, and says which rank and task).
#   cmake -DCOMMAND=... -DEXPECT=... -DWITHIN_MS=... -P expect-failure.cmake
cmake_minimum_required(VERSION 3.20)
string(REPLACE "|" ";" COMMAND "${COMMAND}")
string(TIMESTAMP t0 "%s%f")
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE rc
  OUTPUT_VARIABLE out ERROR_VARIABLE out)
string(TIMESTAMP t1 "%s%f")
math(EXPR ms "(${t1} - ${t0}) / 1000")
message("${out}")
message("exit status ${rc} after ${ms} ms")
if(rc EQUAL 0)
  message(FATAL_ERROR "the job succeeded; it should have ended with an error")
endif()
if(ms GREATER WITHIN_MS)
  message(FATAL_ERROR "the job took ${ms} ms to end (bound ${WITHIN_MS} ms)")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not match: ${EXPECT}")
endif()
message("ok: ended in ${ms} ms, output matches")

# Counts a TAP stream framed by tools/testing/run-tests and
# tools/testing/vm/init.
# Prints one line per failure and, last, "PASS FAIL SKIP".
#   ok / not ok        kselftest-harness results (# SKIP counts as skipped)
#   # SN-RUN/SN-RC     one binary's run; a missing "# Totals:" summary or a
#                      non-zero status without a "not ok" is a failure
#   # SN-PASS/SN-FAIL/SN-SKIP  checks made by the runner scripts
#   # SN-END           end sentinel; required when need_end=1 (a guest that
#                      crashed or hung never prints it)
/^# SN-RUN / { name = $3; running = 1; totals = 0; notok = 0; next }
/^# SN-RC / {
	if (!totals) {
		fail++
		print "FAIL " $3 ": no harness summary (exit status " $4 ")"
	} else if ($4 != 0 && $4 != 4 && !notok) {
		fail++
		print "FAIL " $3 ": exit status " $4
	}
	running = 0
	next
}
/^# Totals:/ { totals = 1; next }
/^ok [0-9]/ {
	if ($0 ~ /# SKIP/) { skip++; print "SKIP " name ": " $0 } else pass++
	next
}
/^not ok [0-9]/ { fail++; notok = 1; print "FAIL " name ": " $0; next }
/^# SN-PASS / { pass++; next }
/^# SN-FAIL / { fail++; print "FAIL " substr($0, 11); next }
/^# SN-SKIP / { skip++; print "SKIP " substr($0, 11); next }
/^# SN-END/ { ended = 1; next }
END {
	if (running) {
		fail++
		print "FAIL " name ": never finished (crash or hang)"
	}
	if (need_end && !ended) {
		fail++
		print "FAIL no end sentinel: the guest crashed, hung or timed out"
	}
	print pass + 0, fail + 0, skip + 0
}

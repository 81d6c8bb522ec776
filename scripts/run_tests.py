"""Run named unittest modules on the backend set in the environment.

Called by scripts/test.py once per backend, in its own process; prints the
usual unittest report and then 'RESULT: N passed, N failed, N skipped'.
"""
import argparse
import sys
import time
import unittest


def matching(suite, pattern):
    "Yield the tests of suite whose id contains pattern"
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from matching(test, pattern)
        elif pattern in test.id():
            yield test


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--label', default='')
    parser.add_argument('-k', dest='pattern')
    parser.add_argument('names', nargs='+')
    args = parser.parse_args()
    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    for name in args.names:
        suite.addTests(loader.loadTestsFromName(name))
    if args.pattern:
        suite = unittest.TestSuite(matching(suite, args.pattern))
    start = time.monotonic()
    result = unittest.TextTestRunner(
        stream=sys.stdout, verbosity=1, buffer=False).run(suite)
    # A failure or skip of setUpClass is reported on a stand-in that
    # testsRun does not count: count it as failed/skipped, not as a test run.
    def ran(pairs):
        return [t for t, _ in pairs
            if not isinstance(t, unittest.suite._ErrorHolder)]
    failed = len(result.failures) + len(result.errors) + len(
        result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - len(ran(result.failures)) - len(
        ran(result.errors)) - len(result.unexpectedSuccesses) - len(
        ran(result.skipped))
    print(f"{args.label} took {time.monotonic() - start:.0f}s")
    print(f"RESULT: {passed} passed, {failed} failed, {skipped} skipped",
        flush=True)
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()

// One host at a time: the shared host's collection and the bad-settings hosts would otherwise start side by side on a
// two-core machine and blur each other's timings.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

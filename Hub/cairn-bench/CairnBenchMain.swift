import CairnBenchKit

@main extension BenchCommand {}

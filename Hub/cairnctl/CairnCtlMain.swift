import CairnCtlKit

@main
extension CtlCommand {}

import CairnAgent

@main
extension AgentCommand {}

import CairnAgent

@main
enum CairnAgentMain {
    static func main() async {
        AgentProcess.prepare()
        await AgentCommand.main()
    }
}

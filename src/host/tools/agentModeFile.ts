import { sandboxTools } from './toolNames';

/** The custom agent / chat mode file the "Create Sandboxed Agent Mode" command writes. */
export interface AgentModeFile {
  /** Workspace-relative POSIX path. */
  path: string;
  content: string;
}

/**
 * VS Code 1.106 renamed custom chat modes (`.github/chatmodes/*.chatmode.md`, tools by bare reference name) to
 * custom agents (`.github/agents/*.agent.md`, tools qualified by extension id since 1.105). Later versions still
 * read the old form but flag it for migration, so each version gets the form it documents.
 */
export function agentModeFile(vscodeVersion: string, extensionId: string): AgentModeFile {
  const [major, minor] = vscodeVersion.split('.').map((part) => Number.parseInt(part, 10));
  const customAgents = major > 1 || (major === 1 && minor >= 106);
  const id = extensionId.toLowerCase();
  const tools = sandboxTools.map((t) => (customAgents ? `${id}/${t.referenceName}` : t.referenceName));
  const frontMatter = [
    '---',
    ...(customAgents ? ['name: Agent Sandbox'] : []),
    'description: Works only inside the Agent Sandbox box (a Docker container with a copy of this workspace, and no network unless the developer allowed hosts); every change waits for your review.',
    `tools: [${tools.map((t) => `'${t}'`).join(', ')}]`,
    '---',
  ];
  const body = [
    '# Agent Sandbox',
    '',
    'You work inside an isolated sandbox: a Docker container that holds a copy of this workspace at `/workspace`,',
    'with no network unless the developer allowed some hosts (then only those). Use only the Agent Sandbox tools:',
    '',
    '- `agentSandbox_runCommand` runs shell commands in the box (build, test, git, scripts). Package registries and',
    '  the internet are unreachable unless their hosts are allowed (a denied host answers HTTP 403 saying so); use what',
    '  the image and the workspace already hold. Pass `network: "none"` to run a command offline (e.g. tests).',
    "- `agentSandbox_readFile`, `agentSandbox_listDirectory` read the box's copy of the files.",
    '- `agentSandbox_writeFile`, `agentSandbox_editFile`, `agentSandbox_applyPatch`, `agentSandbox_deleteFile` change it.',
    '- `agentSandbox_pendingChanges` lists what you changed so far.',
    '',
    'Paths are relative to the workspace root. Nothing you do reaches the real workspace by itself: the developer',
    'reviews every change and accepts or rejects it, file by file or hunk by hunk. A rejected change is reverted in the',
    'box, so read a file again before editing it further. When you finish, call `agentSandbox_pendingChanges` and',
    'summarize the changes that await review; never say they are already applied.',
    '',
  ];
  return {
    path: customAgents ? '.github/agents/Agent Sandbox.agent.md' : '.github/chatmodes/Agent Sandbox.chatmode.md',
    content: [...frontMatter, '', ...body].join('\n'),
  };
}

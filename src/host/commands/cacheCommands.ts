import * as path from 'node:path';
import * as vscode from 'vscode';
import type { CacheInfo } from '../../shared/protocol';
import type { EngineClient } from '../engineClient';
import { showEngineError } from '../errorMessages';

export interface CacheCommandDeps {
  engine: EngineClient;
  log: vscode.LogOutputChannel;
}

/** What `agentSandbox.clearCaches` takes from a caller other than the palette: every cache, or the named volumes. */
export type ClearCachesArgs = { all: true } | { volumeNames: string[] };

interface CachePick extends vscode.QuickPickItem {
  volumeNames?: string[];
}

function sizeText(bytes: number | undefined): string {
  if (bytes === undefined) return vscode.l10n.t('size unknown');
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}

function cacheItem(cache: CacheInfo): CachePick {
  const used = cache.lastUsed
    ? vscode.l10n.t('last used {0}', new Date(cache.lastUsed).toLocaleString())
    : vscode.l10n.t('made {0}', cache.createdAt ? new Date(cache.createdAt).toLocaleString() : '?');
  return {
    label: `${cache.tool} · ${path.basename(cache.folder) || cache.folder}`,
    description: sizeText(cache.sizeBytes),
    detail: [cache.folder, used, cache.inUse ? vscode.l10n.t('in use by a box') : ''].filter(Boolean).join(' · '),
    volumeNames: [cache.volumeName],
  };
}

/**
 * `Agent Sandbox: Clear Caches`: lists the package caches of every workspace (tool, workspace, size, last use)
 * and removes the one picked, or all. With `args` (tests, other commands) it clears without asking. Returns what
 * the server removed and what a running box still mounts.
 */
export async function clearCaches(deps: CacheCommandDeps, args?: ClearCachesArgs): Promise<{ removed: string[]; inUse: string[] } | undefined> {
  try {
    let volumeNames: string[] | undefined;
    if (args) {
      volumeNames = 'all' in args ? undefined : args.volumeNames;
    } else {
      const { caches } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: vscode.l10n.t('Agent Sandbox: measuring caches') },
        () => deps.engine.listCaches(),
      );
      if (caches.length === 0) {
        void vscode.window.showInformationMessage(vscode.l10n.t('Agent Sandbox: there are no package caches.'));
        return { removed: [], inUse: [] };
      }
      const total = caches.reduce((sum, c) => sum + (c.sizeBytes ?? 0), 0);
      const all: CachePick = {
        label: vscode.l10n.t('$(trash) Clear all caches'),
        description: vscode.l10n.t('{0} caches, {1}', caches.length, sizeText(total)),
      };
      const picked = await vscode.window.showQuickPick<CachePick>(
        [all, { label: '', kind: vscode.QuickPickItemKind.Separator }, ...caches.map(cacheItem)],
        {
          title: vscode.l10n.t('Agent Sandbox: Clear Caches'),
          placeHolder: vscode.l10n.t('Package caches kept between boxes of a workspace: pick one to remove, or all'),
          matchOnDetail: true,
        },
      );
      if (!picked) return undefined;
      volumeNames = picked.volumeNames;
    }
    const result = await deps.engine.clearCaches(volumeNames);
    deps.log.info(`[host] caches cleared: ${result.removed.length} removed, ${result.inUse.length} in use`);
    const message = result.inUse.length
      ? vscode.l10n.t(
          'Agent Sandbox: removed {0} cache(s); {1} in use by a running box stayed (Reset Sandbox first to clear them).',
          result.removed.length,
          result.inUse.length,
        )
      : vscode.l10n.t('Agent Sandbox: removed {0} cache(s).', result.removed.length);
    void vscode.window.showInformationMessage(message);
    return result;
  } catch (error) {
    await showEngineError(error, deps.log);
    return undefined;
  }
}

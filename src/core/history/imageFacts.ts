// The image part of a run's history details, shared by the panel (webview) and its tests. Types only from the
// protocol: the webview bundle imports this file, so it must not pull in Node or `vscode`.
import type { BoxImage } from '../../shared/protocol';

/** Label and text rows for a run's image: reference and id, digest, the image report's summary, a moved-tag note. */
export function imageFacts(image: BoxImage): [string, string][] {
  const facts: [string, string][] = [
    ['Image', `${image.reference}  ${image.id.replace(/^(sha256:[0-9a-f]{12}).*/, '$1')}`],
    ['Image digest', image.digest ?? `${image.id} (no registry digest: built or imported locally)`],
  ];
  if (image.summary) facts.push(['Image report', image.summary]);
  if (image.note) facts.push(['Image pin', image.note]);
  return facts;
}

// Entry of the second extension bundle, dist/languageClient.js. vscode-languageclient is most of the
// extension's code and is needed only once the engine server starts, so `EngineClient` loads this bundle on
// first engine use instead of at activation (see `npm run bench`, activation).
export { CloseAction, ErrorAction, LanguageClient, State, TransportKind } from 'vscode-languageclient/node';

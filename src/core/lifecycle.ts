/** Something that holds resources and releases them once. */
export interface IDisposable {
  dispose(): void;
}

/** Base for long-lived objects: children registered with `_register` are disposed with their owner. */
export abstract class Disposable implements IDisposable {
  private readonly _children: IDisposable[] = [];
  private _isDisposed = false;

  protected get isDisposed(): boolean {
    return this._isDisposed;
  }

  protected _register<T extends IDisposable>(child: T): T {
    if (this._isDisposed) {
      child.dispose();
    } else {
      this._children.push(child);
    }
    return child;
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    // Children go in reverse order of registration, like a stack of resources.
    for (const child of this._children.splice(0).reverse()) {
      child.dispose();
    }
  }
}

/** Wraps a function as a disposable. */
export function toDisposable(fn: () => void): IDisposable {
  return { dispose: fn };
}

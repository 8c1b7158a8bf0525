// A Delete button that asks once more before it deletes (the library's rows).
import { useState } from 'react';

export function ConfirmDelete({ what, onConfirm, disabled, title }: { what: string; onConfirm(): void; disabled?: boolean; title?: string }) {
  const [asking, setAsking] = useState(false);
  if (!asking) {
    return (
      <button type="button" className="btn tiny danger-outline" disabled={disabled} title={title ?? `Delete ${what}`} onClick={() => setAsking(true)} data-testid="delete">
        Delete
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={`Delete ${what}?`}>
      Delete?{' '}
      <button type="button" className="btn tiny danger" onClick={() => { setAsking(false); onConfirm(); }}>
        Yes
      </button>
      <button type="button" className="btn tiny" onClick={() => setAsking(false)}>
        No
      </button>
    </span>
  );
}

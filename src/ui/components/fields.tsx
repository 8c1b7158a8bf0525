// Form fields shared by the panels: a number field that commits on blur/Enter and says when a value
// is out of range, and a labelled row.
import { useEffect, useId, useState, type ReactNode } from 'react';

export function Field({ label, hint, children, htmlFor }: { label: string; hint?: string; children: ReactNode; htmlFor?: string }) {
  return (
    <div className="field">
      <label htmlFor={htmlFor} title={hint}>
        {label}
      </label>
      {children}
    </div>
  );
}

export function NumberField({
  label, value, onChange, min, max, step, integer, hint, disabled, testId, width,
}: {
  label: string;
  value: number;
  onChange(v: number): void;
  min?: number;
  max?: number;
  step?: number;
  integer?: boolean;
  hint?: string;
  disabled?: boolean;
  testId?: string;
  width?: number;
}) {
  const id = useId();
  const [draft, setDraft] = useState(String(value));
  const [bad, setBad] = useState<string | null>(null);
  useEffect(() => {
    setDraft(String(value));
    setBad(null);
  }, [value]);
  const commit = () => {
    const v = Number(draft);
    let why: string | null = null;
    if (draft.trim() === '' || !Number.isFinite(v)) why = 'not a number';
    else if (integer && !Number.isInteger(v)) why = 'a whole number is needed';
    else if (min !== undefined && v < min) why = `at least ${min}`;
    else if (max !== undefined && v > max) why = `at most ${max}`;
    setBad(why);
    if (!why && v !== value) onChange(v);
  };
  return (
    <div className="field">
      <label htmlFor={id} title={hint}>
        {label}
      </label>
      <input
        id={id}
        type="number"
        inputMode={integer ? 'numeric' : 'decimal'}
        value={draft}
        min={min}
        max={max}
        step={step ?? (integer ? 1 : 'any')}
        disabled={disabled}
        aria-invalid={bad ? true : undefined}
        title={bad ?? hint}
        data-testid={testId}
        style={width ? { width } : undefined}
        onChange={(e) => setDraft(e.target.value)}
        onBlur={commit}
        onKeyDown={(e) => {
          if (e.key === 'Enter') commit();
          if (e.key === 'Escape') {
            setDraft(String(value));
            setBad(null);
          }
        }}
      />
      {bad && <span className="field-error">{bad}</span>}
    </div>
  );
}

export function SelectField<T extends string>({
  label, value, options, onChange, hint, disabled, testId,
}: {
  label: string;
  value: T;
  options: readonly { value: T; label: string; title?: string }[];
  onChange(v: T): void;
  hint?: string;
  disabled?: boolean;
  testId?: string;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id} title={hint}>
        {label}
      </label>
      <select id={id} value={value} disabled={disabled} data-testid={testId} title={hint} onChange={(e) => onChange(e.target.value as T)}>
        {options.map((o) => (
          <option key={o.value} value={o.value} title={o.title}>
            {o.label}
          </option>
        ))}
      </select>
    </div>
  );
}

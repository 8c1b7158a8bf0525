// The time of a run before it starts (issue 23 item 4), beside Train and Compare: "Estimate time"
// asks the worker to time one training step and one evaluation batch per method on this device
// (src/mas/time-estimate.ts), then shows the whole figure, and a plain warning past 30 minutes (a big
// model on a software adapter runs for days). The figure belongs to the setup it was measured for:
// a change of the setup hides it.
import { useState } from 'react';
import type { CompareRequest, TimeEstimateReport, TimeMode } from '../../worker/api';
import { errorText, getEngine } from '../engine';

interface Props {
  mode: TimeMode;
  /** The setup to time; null while it cannot run (the button is then off). */
  request: CompareRequest | null;
  /** Why the setup cannot be timed now (a run holds the GPU, ...), or null. */
  blocked: string | null;
}

export function TimeEstimate({ mode, request, blocked }: Props) {
  const key = request ? JSON.stringify([mode, request]) : '';
  const [shown, setShown] = useState<{ key: string; report: TimeEstimateReport | null; error: string | null } | null>(null);
  const [busy, setBusy] = useState(false);
  const mine = shown && shown.key === key ? shown : null;
  const measure = () => {
    if (!request) return;
    setBusy(true);
    getEngine().estimateTime(request, mode).then(
      (report) => setShown({ key, report, error: null }),
      (e) => setShown({ key, report: null, error: errorText(e) }),
    ).finally(() => setBusy(false));
  };
  const tid = `time-estimate-${mode}`;
  return (
    <div className="time-estimate small" data-testid={tid}>
      <button
        type="button"
        className="btn tiny"
        disabled={busy || !request || !!blocked}
        title={blocked ?? (mode === 'run' ? 'Time one training step and one evaluation batch of this setup here, and estimate the whole run' : 'Time one training step and one evaluation batch of each method here, and estimate the whole comparison')}
        onClick={measure}
        data-testid={`${tid}-button`}
      >
        {busy ? 'Timing…' : 'Estimate time'}
      </button>{' '}
      {mine?.report && (
        <span data-testid={`${tid}-text`}>
          {mode === 'run' ? 'This run' : 'This comparison'}: <b>{mine.report.summary.split(': ')[0]}</b>: {mine.report.summary.split(': ').slice(1).join(': ')}
        </span>
      )}
      {mine?.report?.warning && (
        <div className="alert compact" role="alert" data-testid={`${tid}-warning`}>
          {mine.report.warning.replace(/^warning: /, 'Long run: ')}
        </div>
      )}
      {mine?.error && (
        <span className="refused" role="alert" data-testid={`${tid}-error`}>
          Cannot estimate: {mine.error}
        </span>
      )}
    </div>
  );
}

// The "?" guide: what each method is, what the controls prove, how to read the heatmap, and where
// to read more (the papers and the README).
import { useEffect, useState } from 'react';
import { METHODS } from '../../worker/api';
import { METHOD_INFO } from './SetupPanel';
import readme from '../../../README.md?raw';
// the README as a file of the site (vite emits it as an asset), so the guide links to it like the papers
import readmeUrl from '../../../README.md?url';

export function Guide({ onClose }: { onClose(): void }) {
  const [showReadme, setShowReadme] = useState(false);
  useEffect(() => {
    const h = (e: KeyboardEvent) => e.key === 'Escape' && onClose();
    window.addEventListener('keydown', h);
    return () => window.removeEventListener('keydown', h);
  }, [onClose]);
  return (
    <div className="guide-backdrop" onClick={onClose}>
      <aside className="guide" role="dialog" aria-modal="true" aria-labelledby="guide-title" onClick={(e) => e.stopPropagation()} data-testid="guide">
        <div className="guide-head">
          <h2 id="guide-title">How to read this page</h2>
          <button type="button" className="link" onClick={onClose} aria-label="Close the guide">
            ✕
          </button>
        </div>
        <p>
          A small team of transformer agents solves a task whose information is <b>split</b> between them: one holds a table, another
          the question. Alone, the answering agent can only guess (chance). What matters is what crosses between them, and how.
        </p>
        <h3>The methods</h3>
        <dl className="guide-methods">
          {METHODS.map((m) => (
            <div key={m}>
              <dt>{METHOD_INFO[m].label}</dt>
              <dd>{METHOD_INFO[m].about}</dd>
            </div>
          ))}
        </dl>
        <p className="small">
          Latent methods hand the receiver the sender’s <b>key-value cache</b>: after reading its part, the sender runs a few latent steps
          (its last hidden state mapped back to an input embedding, no token decoded), and the receiver attends over those K/V positions as if
          they were its own context. DiffMAS trains LoRA adapters end to end through that cache.
        </p>
        <p className="small">
          The <b>trained</b> single agent and skyline get the same LoRA, steps, learning rate and batch as DiffMAS, on the same answers, so a
          comparison with them measures the channel, not the training: a trained team that beats the untrained skyline may only have learned
          the answer format. The <b>trained</b> text team gets them too: each sender writes exactly the text budget of tokens (greedy, never
          a line end), and the receiver’s loss reaches the sender through a softmax over each token in its place (straight-through), so the
          sender learns what to write and the receiver how to read it.
        </p>
        <h3>What the controls prove</h3>
        <ul>
          <li><b>shuffle</b>: every receiver reads another episode’s message. If accuracy falls to chance, the answer came from the message.</li>
          <li><b>zero</b>: the received K/V (or the text) is emptied: the receiver alone.</li>
          <li><b>noise</b> (latent): the K/V replaced by Gaussian noise with its own mean and covariance: not just “some vectors of the right size”.</li>
          <li><b>rotate</b> (latent): the K/V turned by a random rotation per head: the receiver reads directions, not only norms.</li>
          <li><b>permute</b> (latent): each sender’s latent steps change places (their keys turned to the new positions): if accuracy holds, the message is a set of vectors whose order carries nothing.</li>
        </ul>
        <p className="small">A control says nothing when the uncontrolled method is itself at chance: there is nothing for it to remove.</p>
        <p className="small">
          <b>What the message holds</b> (latent view, <i>Probe the message</i>): a linear probe per part of the senders’ content reads one
          received vector (a latent step, a layer, K or V) and is scored on held-out episodes beside that part’s chance. The command line’s
          <code> --bits</code> measures how few bits per float the received K/V can be cut to before accuracy drops a point.
        </p>
        <h3>Reading the heatmap</h3>
        <ul>
          <li><b>Rows</b>: the receiver’s own tokens (its query) and latent steps. <b>Columns</b>: every position of its senders it can attend over; grey bands are prompt tokens, violet ones latent steps (z1, z2…).</li>
          <li><b>Colour</b>: attention probability, one layer and head or their mean; a row’s remaining attention goes to its own tokens.</li>
          <li><b>Before / now</b>: the same example with the initial adapters and with the trained ones, on one colour scale.</li>
          <li><b>Layer × head</b>: how much of each head’s attention lands on the message at all; click a cell to show that head.</li>
        </ul>
        <h3>Read more</h3>
        <ul>
          <li>
            LatentMAS: <a href="https://arxiv.org/abs/2511.20639" target="_blank" rel="noreferrer">Latent Collaboration in Multi-Agent Systems</a> (training-free latent steps and K/V transfer)
          </li>
          <li>
            Cache-to-Cache: <a href="https://arxiv.org/abs/2510.03215" target="_blank" rel="noreferrer">Direct Semantic Communication Between Large Language Models</a> (a learned projection of one model’s cache into another’s)
          </li>
          <li>
            DiffMAS: <a href="https://arxiv.org/abs/2604.21794" target="_blank" rel="noreferrer">Learning to Communicate: Toward End-to-End Optimization of Multi-Agent Language Systems</a> (adapters trained through the trace)
          </li>
          <li>
            The project’s{' '}
            <a href={readmeUrl} target="_blank" rel="noreferrer" type="text/markdown" data-testid="guide-readme-link">
              README
            </a>{' '}
            (commands, tests, what storage promises), or{' '}
            <button type="button" className="link" onClick={() => setShowReadme((x) => !x)} data-testid="guide-readme">
              {showReadme ? 'hide it' : 'show it here'}
            </button>
            ; docs/run-bundle.md in the repository gives the exported run’s format
          </li>
        </ul>
        {showReadme && <pre className="guide-readme">{readme}</pre>}
      </aside>
    </div>
  );
}

// Shareable state: the whole setup lives in the URL hash; opening the link restores it exactly,
// changes are written back, and a reload keeps them. Invalid graphs from a link (or made in the
// editor) are shown as such and cannot be run.
import { expect, test } from '@playwright/test';
import { ready, shot } from './helpers';

// In the order of the state table (src/ui/state.ts), so the page writes back exactly this text.
const LINK =
  'task=relay&difficulty=2&method=latentmas-full&model=builtin:tiny&rank=4&alpha=8&targets=q_proj,v_proj&lr=0.002' +
  '&steps=17&batch=3&seed=42&latentMap=identity&positions=prefix&textBudget=5&textTemperature=1&lrSchedule=cosine&latentSlotOffset=0&quizLoss=0&curriculumFrom=0&evalEvery=4&evalSize=9' +
  '&topology=v1;s:0:3:o:src,r:1:2:s:relay%20me,k:2:0:s:asker;s-r,r-k;k' +
  '&split=ood&example=3&layer=1&head=avg&smoothing=0.3&compareMethods=single,diffmas&compareSeeds=4,5&fitY=1&rendering=word';

test('a link restores the setup exactly, and edits are written back to it', async ({ page }) => {
  await page.goto(`/#${LINK}`);
  await ready(page);
  await expect(page.getByTestId('task')).toHaveValue('relay');
  await expect(page.getByTestId('difficulty')).toHaveValue('2');
  await expect(page.getByTestId('method')).toHaveValue('latentmas-full');
  await expect(page.getByTestId('model')).toHaveValue('builtin:tiny');
  await expect(page.getByTestId('rank')).toHaveValue('4');
  await expect(page.getByTestId('alpha')).toHaveValue('8');
  await expect(page.getByTestId('lr')).toHaveValue('0.002');
  await expect(page.getByTestId('steps')).toHaveValue('17');
  await expect(page.getByTestId('batch')).toHaveValue('3');
  await expect(page.getByTestId('seed')).toHaveValue('42');
  await expect(page.getByTestId('inspect-split')).toHaveValue('ood');
  await expect(page.getByTestId('rendering')).toHaveValue('word');
  // chat is offered only for a model whose tokenizer_config.json has a chat template (the tiny toy has none)
  await expect(page.getByTestId('rendering').locator('option')).toHaveText([/^auto/, /^char/, /^word/]);
  await expect(page.getByRole('button', { name: 'q', exact: true })).toHaveAttribute('aria-pressed', 'true');
  await expect(page.getByRole('button', { name: 'k', exact: true })).toHaveAttribute('aria-pressed', 'false');
  await expect(page.getByTestId('agent-node-s')).toContainText('src');
  await expect(page.getByTestId('agent-node-r')).toContainText('relay me');
  await expect(page.getByTestId('agent-node-r')).toContainText('shared');
  await expect(page.getByTestId('agent-node-k')).toContainText('asker');
  await expect(page.getByTestId('topology-status')).toContainText('valid: 3 agents, 2 messages');
  await expect(page.getByTestId('compare-seeds')).toHaveValue('4, 5');
  await expect(page.getByTestId('link-problems')).toHaveCount(0);
  // the page writes back exactly the link it was given
  expect(new URL(page.url()).hash).toBe(`#${LINK}`);
  await shot(page, 'url-restored');

  // an edit goes into the link, and a reload keeps it
  await page.getByTestId('seed').fill('43');
  await page.getByTestId('seed').press('Enter');
  await page.getByTestId('method').selectOption('text');
  await expect.poll(() => new URL(page.url()).hash).toContain('seed=43');
  expect(new URL(page.url()).hash).toContain('method=text');
  await page.reload();
  await ready(page);
  await expect(page.getByTestId('seed')).toHaveValue('43');
  await expect(page.getByTestId('method')).toHaveValue('text');
  await expect(page.getByTestId('agent-node-r')).toContainText('relay me');
});

test('a bad value in a link keeps its default and says so', async ({ page }) => {
  await page.goto('/#task=lookup&lr=fast&batch=9999&method=telepathy&model=builtin:tiny');
  await ready(page);
  const note = page.getByTestId('link-problems');
  await expect(note).toContainText('lr');
  await expect(note).toContainText('batch');
  await expect(note).toContainText('method');
  await expect(page.getByTestId('lr')).toHaveValue('0.003');
  await expect(page.getByTestId('method')).toHaveValue('diffmas');
});

test('invalid graphs are shown as such and cannot be run; the editor fixes them', async ({ page }) => {
  await page.goto('/#model=builtin:tiny&topology=v1;a:0:4:o:left,b:1:0:o:right;a-b,b-a;b');
  await ready(page);
  const problems = page.getByTestId('topology-problems');
  await expect(problems).toContainText('Cycle');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await expect(page.getByTestId('run-blockers')).toContainText('topology');
  await shot(page, 'topology-cycle');

  // back to the task's default, then break it in the editor: an agent cut off
  await page.getByTestId('preset-default').click();
  await expect(page.getByTestId('topology-status')).toContainText('valid: 2 agents');
  await page.getByTestId('add-agent').click();
  await expect(problems).toContainText('has no path to the final agent');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  // connect it with the form: the new agent sends to the final agent
  const form = page.getByTestId('agent-form');
  await form.getByLabel('Name').fill('helper');
  await form.getByLabel('Name').press('Enter');
  await form.getByLabel('Holds').selectOption('0');
  await form.getByRole('button', { name: 'query' }).click();
  await expect(page.getByTestId('topology-status')).toContainText('valid: 3 agents, 2 messages');
  await expect(page.getByTestId('agent-node-n1')).toContainText('helper');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeEnabled();
  expect(decodeURIComponent(new URL(page.url()).hash)).toContain('n1:0:4:o:helper');
  // no final agent: deleting the final agent leaves nobody to answer
  await page.getByTestId('agent-node-a1').click();
  await page.getByTestId('delete-agent').click();
  await expect(problems).toContainText('No final agent');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
  await shot(page, 'topology-editing');
  // presets rebuild a valid graph
  await page.getByTestId('preset-two-round').click();
  await expect(page.getByTestId('topology-status')).toContainText('valid: 3 agents, 2 messages');
  // connect by dragging from one agent's handle to another's
  await page.getByTestId('preset-single').click();
  await page.getByTestId('add-agent').click();
  await page.waitForTimeout(500); // the view re-fits to the new graph
  const from = (await page.getByTestId('agent-node-n1').locator('.react-flow__handle.source').boundingBox())!;
  const to = (await page.getByTestId('agent-node-a').locator('.react-flow__handle.target').boundingBox())!;
  await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
  await page.mouse.down();
  await page.mouse.move(to.x + to.width / 2 - 30, to.y + to.height / 2, { steps: 8 });
  await page.mouse.move(to.x + to.width / 2, to.y + to.height / 2, { steps: 4 });
  await page.mouse.up();
  // connected (no agent is cut off any more); the graph is sound, but with nobody holding the table
  // DiffMAS cannot run it: the editor says so itself, one verdict with the run bar's reason
  await expect(page.getByTestId('topology-problems')).toHaveCount(0);
  await expect(page.getByTestId('topology-status')).toContainText('cannot run: topology does not fit task lookup: no agent holds part 0 (table)');
  await expect(page.getByRole('button', { name: 'Train', exact: true })).toBeDisabled();
});

// The chat rendering in the page (issue 23 item 3): a tiny random Qwen2 whose tokenizer_config.json has
// a ChatML template is imported; Setup's Rendering select offers chat for it (not for the shipped toy),
// the choice goes into the link, and a DiffMAS step and an inspection run on the template's prompts.
import { zipSync } from 'fflate';
import { expect, test } from '@playwright/test';
import { byteLevelBpe, hfCheckpoint } from '../tests/hf-fixtures';
import { ready, shot, smallLink } from './helpers';

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

test('a model with a chat template is offered the chat rendering, which trains a step and is inspected', async ({ page }) => {
  const tk = byteLevelBpe();
  const fixture = hfCheckpoint({ type: 'qwen2', dtype: 'F32', tokenizer: { ...tk, config: { ...tk.config, chat_template: CHATML } }, tied: true });
  const zip = zipSync(Object.fromEntries([...fixture.files].map(([n, b]) => [`qwen2-chat/${n}`, [b, { level: 6 }]])));
  await page.goto(smallLink({ steps: 3, batch: 2, evalSize: 4, evalEvery: 0 }));
  await ready(page);
  const rendering = page.getByTestId('rendering');
  await expect(rendering.locator('option')).toHaveText([/^auto/, /^char/, /^word/]);
  await page.getByTestId('import-input').setInputFiles({ name: 'qwen2-chat.zip', mimeType: 'application/zip', buffer: Buffer.from(zip) });
  await expect(page.getByTestId('library-notice')).toContainText("Imported base model 'qwen2-chat'", { timeout: 60_000 });
  const option = page.getByTestId('model').locator('option', { hasText: 'qwen2-chat' });
  await page.getByTestId('model').selectOption({ label: (await option.textContent())! });

  await expect(rendering.locator('option')).toHaveText([/^auto/, /^char/, /^word/, /^chat/]);
  await rendering.selectOption('chat');
  await expect.poll(() => new URL(page.url()).hash).toContain('rendering=chat');

  const counter = page.getByTestId('step-counter');
  await page.getByRole('button', { name: 'Step', exact: true }).click();
  await expect(counter).toHaveText('0001', { timeout: 180_000 });
  await expect(page.getByTestId('last-loss')).not.toHaveText('—');
  await expect(page.getByTestId('agents-io')).toContainText('<|im_start|>user', { timeout: 120_000 });
  await expect(page.getByTestId('agents-io')).toContainText('Table:');
  await shot(page, 'chat-rendering-inspected');
});

import { expect, test } from '@playwright/test';

test('the page writes and reads back a value through idb-keyval, and it survives a reload', async ({ page }) => {
  await page.goto('/');
  await expect(page.getByTestId('storage-status')).toContainText('✓ read back 4.0 KB');
  // A value put in the app's idb-keyval database ('keyval-store') is there after a reload.
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const open = indexedDB.open('keyval-store');
        open.onsuccess = () => {
          const tx = open.result.transaction('keyval', 'readwrite');
          tx.objectStore('keyval').put({ note: 'kept' }, 'e2e:value');
          tx.oncomplete = () => resolve();
          tx.onerror = () => reject(tx.error);
        };
        open.onerror = () => reject(open.error);
      }),
  );
  await page.reload();
  await expect(page.getByTestId('storage-status')).toContainText('✓');
  const back = await page.evaluate(
    () =>
      new Promise<unknown>((resolve, reject) => {
        const open = indexedDB.open('keyval-store');
        open.onsuccess = () => {
          const req = open.result.transaction('keyval').objectStore('keyval').get('e2e:value');
          req.onsuccess = () => resolve(req.result);
          req.onerror = () => reject(req.error);
        };
      }),
  );
  expect(back).toEqual({ note: 'kept' });
});

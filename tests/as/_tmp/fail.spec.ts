describe("deliberate", () => {
  test("fails", () => { expect<f32>(1.0).toBeCloseTo(1.5, 3); });
});

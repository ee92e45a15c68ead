class Foo { a: i32 = 1; }
describe("x", () => {
  it("prim", () => { expect<i32>(1).toBe(1); expect<f32>(1.0).toBeCloseTo(1.0); expect<bool>(true).toBe(true); });
  it("cls", () => { expect(new Foo()).toStrictEqual(new Foo()); });
});

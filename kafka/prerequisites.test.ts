import { describe, expect, it } from 'vitest';
import { javaCommand, parseJavaMajor } from './prerequisites.js';

describe('parseJavaMajor', () => {
  it.each([
    ['openjdk version "17.0.15" 2025-04-15', 17],
    ['openjdk version "21" 2023-09-19', 21],
    ['java version "1.8.0_392"', 8],
    ['openjdk version "11.0.2" 2019-01-15 LTS', 11],
  ])('reads %s as %i', (output, major) => {
    expect(parseJavaMajor(output)).toBe(major);
  });

  it('says undefined for output it does not understand', () => {
    expect(parseJavaMajor('command not found')).toBeUndefined();
  });
});

describe('javaCommand', () => {
  it('prefers JAVA_HOME and falls back to the PATH', () => {
    expect(javaCommand('/opt/jdk-21')).toBe('/opt/jdk-21/bin/java');
    expect(javaCommand(undefined)).toBe('java');
  });
});

// What the chat server keeps for each connected client.
export interface SessionState {
  /** Set by Login; a session that has not logged in may only log in or ping. */
  userId?: number
  nick?: string
}

export const initialState = (): SessionState => ({})
